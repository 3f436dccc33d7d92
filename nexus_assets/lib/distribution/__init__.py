"""Distribution: how published packages reach school servers.

The signed catalog school servers pull from (`vkp_catalog`), the school-server side that fetches,
verifies and installs packages atomically (`vkp_pull`), and the CDN invalidation after a publication
(`cdn`).
"""
