"""Data quality: the Great Expectations results of the last `convert_dataset`, failures first."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, ui

SHOWN_OFFENDING = 200  # paths listed per failed expectation

st.title("Data quality")
cat = ui.category("reports/validation/validation.json")
raw = ui.need(data.read_validation, cat)
table = data.validation_table(raw)
n_failed = int((~table["success"]).sum())
if n_failed == 0 and raw.get("success", True):
    st.success(f"All {len(table)} expectations passed.")
else:
    st.error(
        f"{n_failed} of {len(table)} expectations failed: the prepared data of **{cat.name}** "
        "has the problems listed first below."
    )

stats = raw.get("statistics") if isinstance(raw.get("statistics"), dict) else {}
if stats:
    columns = st.columns(min(len(stats), 4))
    for column, (key, value) in zip(columns, list(stats.items())[:4], strict=False):
        column.metric(key.replace("_", " "), f"{value:.1f}" if isinstance(value, float) else str(value))

shown = pd.DataFrame(
    {
        "result": table["success"].map({True: "✓ passed", False: "✗ failed"}),
        "expectation": table["expectation"],
        "column": table["column"],
        "observed": table["observed"],
        "offending files": table["offending"].map(len),
    }
)
st.dataframe(shown, hide_index=True, width="stretch")
for _, row in table[~table["success"]].iterrows():
    where = f" on `{row['column']}`" if row["column"] else ""
    with st.expander(
        f"✗ {row['expectation']}{where}: {len(row['offending'])} offending file(s)", expanded=True
    ):
        st.markdown(f"observed: `{row['observed']}`")
        if row["offending"]:
            st.code("\n".join(map(str, row["offending"][:SHOWN_OFFENDING])), language=None)
            if len(row["offending"]) > SHOWN_OFFENDING:
                st.caption(f"… and {len(row['offending']) - SHOWN_OFFENDING} more")

info = data.read_json_or(cat.prepared / "info.json", {}) if cat.prepared is not None else {}
if isinstance(info, dict) and info:
    st.subheader("Prepared dataset")
    counts = info.get("counts")
    if isinstance(counts, dict) and counts:
        st.dataframe(pd.DataFrame([counts]).astype(str), hide_index=True)
    skipped = info.get("skipped") or []
    if skipped:
        st.warning(f"{len(skipped)} source file(s) were skipped by convert_dataset:")
        st.dataframe(pd.DataFrame(skipped), hide_index=True, width="stretch")
