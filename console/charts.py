"""Charts of the dashboards and the monthly report as inline SVG, drawn on the server:
no script, no inline style.

Colours come from classes in ``console.css`` (``.chart .bar``, ``.bar.bad``); geometry
from SVG attributes. Every text is escaped. Each bar group carries its numbers twice:
in a ``<title>`` (the tooltip, read out by screen readers) and in ``data-`` attributes
(for tests and for anyone scraping the page). The pages also show the same numbers in
a table, so nothing depends on seeing the picture.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup, escape

from blink_sms.services.monthly import MonthDay
from blink_sms.services.reports import CauseCount, Dashboard, DayCount, Funnel


def _num(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _attrs(**values: object) -> str:
    """SVG attributes, escaped; a trailing underscore is dropped, one in the middle is a dash."""
    return "".join(
        f' {name.rstrip("_").replace("_", "-")}="{escape(str(value))}"'
        for name, value in values.items()
    )


def _tag(name: str, content: str = "", **attrs: object) -> str:
    return f"<{name}{_attrs(**attrs)}>{content}</{name}>"


def _text(content: str, **attrs: object) -> str:
    return _tag("text", str(escape(content)), **attrs)


def _title(content: str) -> str:
    return _tag("title", str(escape(content)))


def _svg(width: int, height: int, label: str, parts: Iterable[str]) -> Markup:
    body = _title(label) + "".join(parts)
    return Markup(  # noqa: S704 -- every text and attribute above went through escape()
        _tag(
            "svg",
            body,
            xmlns="http://www.w3.org/2000/svg",
            viewBox=f"0 0 {width} {height}",
            role="img",
            aria_label=label,
        )
    )


def nice_top(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that is at least ``value`` (an axis top)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def day_label(day: date) -> str:
    return f"{day.day} {day:%b}"


def _grid(y_top: int, *, left: int, right: int, top: int, plot_h: int) -> list[str]:
    """Lines at 0, the top, and the middle when it is a whole number, with their values."""
    parts = []
    for value in sorted({0, y_top} | ({y_top // 2} if y_top % 2 == 0 else set())):
        y = top + plot_h - plot_h * value / y_top
        parts.append(_tag("line", class_="grid-line", x1=left, x2=right, y1=_num(y), y2=_num(y)))
        parts.append(_text(str(value), class_="axis", x=left - 4, y=_num(y + 3), text_anchor="end"))
    return parts


def resets(days: Sequence[DayCount]) -> Markup:
    """Stacked bars per day: done (bottom) and failed (top, red)."""
    width, height = 600, 200
    left, right, top, bottom = 30, 6, 10, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    y_top = nice_top(max((day.total for day in days), default=0))
    slot = plot_w / max(len(days), 1)
    bar_w = slot * 0.7
    parts = _grid(y_top, left=left, right=width - right, top=top, plot_h=plot_h)
    for index, day in enumerate(days):
        x = left + index * slot + (slot - bar_w) / 2
        done_h = plot_h * day.done / y_top
        failed_h = plot_h * day.failed / y_top
        base = top + plot_h
        bars = _title(f"{day.day.isoformat()}: {day.done} done, {day.failed} failed")
        bars += _tag(
            "rect",
            class_="bar",
            x=_num(x),
            y=_num(base - done_h),
            width=_num(bar_w),
            height=_num(done_h),
        )
        bars += _tag(
            "rect",
            class_="bar bad",
            x=_num(x),
            y=_num(base - done_h - failed_h),
            width=_num(bar_w),
            height=_num(failed_h),
        )
        parts.append(
            _tag(
                "g",
                bars,
                class_="day",
                data_day=day.day.isoformat(),
                data_done=day.done,
                data_failed=day.failed,
            )
        )
        if (len(days) - 1 - index) % 7 == 0:  # today, a week before, ...
            today = index == len(days) - 1  # ends at the right edge, not past it
            parts.append(
                _text(
                    day_label(day.day),
                    class_="axis",
                    x=_num(x + (bar_w if today else bar_w / 2)),
                    y=height - 8,
                    text_anchor="end" if today else "middle",
                )
            )
    first = days[0].day.isoformat() if days else ""
    last = days[-1].day.isoformat() if days else ""
    return _svg(width, height, f"Resets per UTC day, {first} to {last}: done and failed", parts)


def _hbars(rows: Sequence[tuple[str, str, int, dict[str, object]]], label: str) -> Markup:
    """Horizontal bars, one row each: (label, tooltip, count, data attributes)."""
    width, row_h, bar_h, left = 300, 34, 12, 0
    bar_max = 250
    top_count = max((count for _, _, count, _ in rows), default=0) or 1
    parts: list[str] = []
    for index, (text, tooltip, count, data) in enumerate(rows):
        y = index * row_h
        bar_w = bar_max * count / top_count
        content = _title(tooltip)
        content += _text(text, class_="label", x=left, y=y + 12)
        content += _tag(
            "rect",
            class_="bar" + (" bad" if data.get("data_code") else ""),
            x=left,
            y=y + 17,
            width=_num(bar_w),
            height=bar_h,
        )
        content += _text(str(count), class_="value", x=_num(left + bar_w + 4), y=y + 27)
        parts.append(_tag("g", content, **data))
    return _svg(width, max(len(rows), 1) * row_h, label, parts)


FUNNEL_STAGES = (
    ("imported", "Imported"),
    ("invited", "Invited (activation email)"),
    ("active", "Active (phone bound)"),
)


def funnel(numbers: Funnel) -> Markup:
    """Imported → invited → active, each bar as wide as its share of the imported."""
    rows: list[tuple[str, str, int, dict[str, object]]] = []
    for key, words in FUNNEL_STAGES:
        count: int = getattr(numbers, key)
        share = (
            f" ({round(100 * count / numbers.imported)} % of imported)" if numbers.imported else ""
        )
        rows.append(
            (
                words,
                f"{words}: {count}{share}",
                count,
                {"class_": "stage", "data_stage": key, "data_count": count},
            )
        )
    return _hbars(rows, "Enrollment: imported, invited, active")


def causes(counts: Sequence[CauseCount]) -> Markup:
    """Failures by cause, most first, the error code in plain words."""
    rows: list[tuple[str, str, int, dict[str, object]]] = [
        (
            cause.words,
            f"{cause.words} ({cause.code}): {cause.count}",
            cause.count,
            {"class_": "cause", "data_code": cause.code, "data_count": cause.count},
        )
        for cause in counts
    ]
    return _hbars(rows, "Failures by cause")


@dataclass(frozen=True)
class Charts:
    """The drawn charts of a dashboard, for ``console/_charts.html``."""

    report: Dashboard
    resets: Markup
    funnel: Markup
    causes: Markup


def render(report: Dashboard) -> Charts:
    return Charts(report, resets(report.days), funnel(report.funnel), causes(report.causes))


# The monthly report's day chart: what each stacked bar shows, bottom up, and its class.
MONTH_SERIES = (("resets", "resets", "bar"), ("unlocks", "unlocks", "bar alt"),
                ("failures", "failed", "bar bad"))  # fmt: skip


def month(days: Sequence[MonthDay]) -> Markup:
    """One month, a stacked bar per UTC day: done resets, done unlocks, failures (red).
    The 1st, 8th, 15th, 22nd and 29th are labelled."""
    width, height = 600, 200
    left, right, top, bottom = 30, 6, 10, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    y_top = nice_top(max((day.resets + day.unlocks + day.failures for day in days), default=0))
    slot = plot_w / max(len(days), 1)
    bar_w = slot * 0.7
    parts = _grid(y_top, left=left, right=width - right, top=top, plot_h=plot_h)
    for index, day in enumerate(days):
        x = left + index * slot + (slot - bar_w) / 2
        base = top + plot_h
        counts = [(getattr(day, key), words, cls) for key, words, cls in MONTH_SERIES]
        content = _title(
            f"{day.day.isoformat()}: " + ", ".join(f"{count} {words}" for count, words, _ in counts)
        )
        for count, _, cls in counts:
            bar_h = plot_h * count / y_top
            base -= bar_h
            content += _tag(
                "rect", class_=cls, x=_num(x), y=_num(base), width=_num(bar_w), height=_num(bar_h)
            )
        parts.append(
            _tag(
                "g",
                content,
                class_="day",
                data_day=day.day.isoformat(),
                data_resets=day.resets,
                data_unlocks=day.unlocks,
                data_failures=day.failures,
            )
        )
        if day.day.day % 7 == 1:
            at_end = index >= len(days) - 3  # the 29th: ends at the right edge, not past it
            parts.append(
                _text(
                    day_label(day.day),
                    class_="axis",
                    x=_num(x + (bar_w if at_end else bar_w / 2)),
                    y=height - 8,
                    text_anchor="end" if at_end else "middle",
                )
            )
    first = days[0].day.isoformat() if days else ""
    last = days[-1].day.isoformat() if days else ""
    return _svg(
        width, height, f"Per UTC day, {first} to {last}: resets, unlocks and failures", parts
    )
