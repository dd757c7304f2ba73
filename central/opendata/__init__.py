"""Open data in the formats others read: ParkAPI v3 (JSON) and DATEX II v3 parking (XML).

Both are built from the lots' public figures only (``LotOut``, as ``/api/v1/lots``) and the
site file; the wire formats are pure functions (``parkapi.py``, ``datex2.py``), the routes
(``router.py``) cache their bytes per refresh. docs/open-data.md lists every feed.
"""
