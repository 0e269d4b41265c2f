"""Wire dialects: schemas, pure converters to and from ``core``, and error rendering, one folder each."""
