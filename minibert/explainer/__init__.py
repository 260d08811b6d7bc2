"""The explainer: where the pooled output of one text comes from, as numbers (report.py, what `minibert explain`
prints), as a self-contained page (page.py, with its template, styles and script in assets/) and as a picture
(plot.py, which needs matplotlib, the `plot` extra, and is imported only by whoever draws).
"""

from .page import Explanation, explain, keys_kept, read_page_data
from .report import pooler_report, report_as_json

__all__ = ["Explanation", "explain", "keys_kept", "pooler_report", "read_page_data", "report_as_json"]
