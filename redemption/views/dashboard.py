"""Dashboard: totals by state, redemptions per day as a server-side SVG chart, recent jobs."""

import math
from dataclasses import dataclass
from datetime import date

from django.contrib import messages
from django.contrib.humanize.templatetags.humanize import intcomma
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect

from redemption import selectors
from redemption.csv_out import csv_download
from redemption.forms import ChartTypeForm
from redemption.tables import JobTable
from redemption.views._common import page, viewer_required

CHART_DAYS = 30
CHART_W, CHART_H = 760, 240
PAD_L, PAD_R, PAD_T, PAD_B = 52, 12, 14, 34


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    day: date
    value: int
    label: str


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class XLabel:
    x: float
    label: str


def _nice_max(value: int) -> tuple[int, int]:
    """A round upper bound for the y axis and its step (four steps)."""
    if value <= 4:
        return 4, 1
    raw = value / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * magnitude
        if step >= raw:
            step = math.ceil(step)
            return step * 4, step
    return value, max(1, value // 4)  # pragma: no cover - the loop always returns


def bar_chart(series: list[tuple[date, int]]) -> dict[str, object]:
    """Geometry of a bar chart of daily counts, rendered as SVG by the template."""
    top, step = _nice_max(max((n for _, n in series), default=0))
    plot_w = CHART_W - PAD_L - PAD_R
    plot_h = CHART_H - PAD_T - PAD_B
    slot = plot_w / max(1, len(series))
    bar_w = max(2.0, slot * 0.7)
    bars, xlabels = [], []
    for i, (day, n) in enumerate(series):
        h = plot_h * n / top if top else 0
        x = PAD_L + i * slot + (slot - bar_w) / 2
        bars.append(
            Bar(
                x=round(x, 1),
                y=round(PAD_T + plot_h - h, 1),
                w=round(bar_w, 1),
                h=round(h, 1),
                day=day,
                value=n,
                label=f"{day:%Y-%m-%d}: {intcomma(n)} redemption{'' if n == 1 else 's'}",
            )
        )
        if i % 5 == 0 or i == len(series) - 1:
            xlabels.append(XLabel(x=round(x + bar_w / 2, 1), label=f"{day:%m-%d}"))
    ticks = [
        Tick(y=round(PAD_T + plot_h - plot_h * k * step / top, 1), label=intcomma(k * step))
        for k in range(5)
    ]
    return {
        "width": CHART_W,
        "height": CHART_H,
        "bars": bars,
        "ticks": ticks,
        "xlabels": xlabels,
        "left": PAD_L,
        "right": CHART_W - PAD_R,
        "baseline": PAD_T + plot_h,
        "label_y": CHART_H - 10,
        "total": sum(n for _, n in series),
        "first": series[0][0] if series else None,
        "last": series[-1][0] if series else None,
    }


def _chart_type(request: HttpRequest) -> tuple[ChartTypeForm, str | None]:
    form = ChartTypeForm(
        request.GET if "code_type" in request.GET else None,
        code_type_choices=selectors.code_types_for_choices(),
    )
    chosen = form.chosen()
    if form.is_bound and not form.is_valid():
        messages.error(request, "No code type has that name; the chart counts every type.")
    return form, chosen


@viewer_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Totals by state, redemption events per day (every type or one), recent jobs."""
    totals = selectors.totals_by_state()
    form, chosen = _chart_type(request)
    series = selectors.redemptions_per_day(days=CHART_DAYS, code_type_name=chosen)
    jobs = JobTable(selectors.recent_jobs(limit=8))
    return page(
        request,
        "redemption/dashboard.html",
        {
            "totals": totals,
            "grand_total": sum(totals.values()),
            "chart": bar_chart(series),
            "chart_form": form,
            "chart_type": chosen,
            "chart_days": CHART_DAYS,
            "series": series,
            "jobs_table": jobs,
        },
        nav="dashboard",
    )


@viewer_required
def redemptions_csv(request: HttpRequest) -> HttpResponseBase:
    """The chart's numbers as CSV: one line per UTC day (formula-safe, like every export)."""
    form, chosen = _chart_type(request)
    if form.is_bound and not form.is_valid():
        return redirect("redemption:dashboard")
    series = selectors.redemptions_per_day(days=CHART_DAYS, code_type_name=chosen)
    label = chosen or "all"
    rows: list[tuple[str, str, str | int]] = [("day", "codeType", "redemptions")]
    rows += [(f"{day:%Y-%m-%d}", label, n) for day, n in series]
    return csv_download(rows, f"redemptions-per-day-{label}.csv")
