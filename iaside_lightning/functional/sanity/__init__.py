"""Attribution sanity checks: DiffROAR's unmasking and attribution localization against known signal masks."""
