"""The task engine: async work (image tasks, Midjourney) kept in the database and run by whichever
process holds its lease (docs/architecture.md, "Tasks")."""
