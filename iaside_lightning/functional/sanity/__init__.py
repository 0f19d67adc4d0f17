"""Attribution sanity checks: DiffROAR's unmasking, attributions, options, proxy and result, and attribution
localization against known signal masks."""
