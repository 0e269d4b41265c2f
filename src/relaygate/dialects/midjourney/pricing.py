"""Default per-request prices of the Midjourney price names, in USD (spec/midjourney.md §9).

The names are new-api's: ``"mj_" + lower(action)``, except SWAP_FACE → ``swap_face``. An operator's own
price for a name replaces its default. INPAINT and CUSTOM_ZOOM cost nothing at the button click: they are
paid when the task is confirmed through ``/mj/submit/modal`` (``mj_modal``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

DEFAULT_PRICES_USD: Mapping[str, str] = MappingProxyType({
    "mj_imagine": "0.1",
    "mj_variation": "0.1",
    "mj_reroll": "0.1",
    "mj_blend": "0.1",
    "mj_modal": "0.1",
    "mj_zoom": "0.1",
    "mj_shorten": "0.1",
    "mj_high_variation": "0.1",
    "mj_low_variation": "0.1",
    "mj_pan": "0.1",
    "mj_inpaint": "0",
    "mj_custom_zoom": "0",
    "mj_describe": "0.05",
    "mj_upscale": "0.05",
    "swap_face": "0.05",
    "mj_upload": "0.05",
    # Not in §9 (new-api's April-2025 table has neither video nor edit): relaygate's own defaults, priced
    # like an imagine, since each makes a new generation job.
    "mj_video": "0.1",
    "mj_edit": "0.1",
})
