"""Data quality: every check of the data validation suite by name, its observed value and, for a
failure, the offending files; for the workspace's last `convert_dataset` or for a retrain whose
validation report was kept beside its run record (a rejected run's, say)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, history, ui
from diffad.artifacts.layout import VALIDATION_FILE, ValidationDir
from diffad.artifacts.runs import OUTCOME_TEXT

SHOWN_OFFENDING = 200  # paths listed per failed check


def report_label(record) -> str:
    return f"retrain {record.run_id}: {OUTCOME_TEXT[record.outcome]}"


st.title("Data quality")
root = data.project_root()
cat = ui.category(VALIDATION_FILE)
records, _ = history.run_records(root)
kept = [r for r in reversed(records) if r.category == cat.name and r.validation_report]
sources: dict[str, ValidationDir] = {}
workspace_label = f"{cat.name}: {cat.source} (last convert_dataset)"
if cat.files.validation.report.is_file():
    sources[workspace_label] = cat.files.validation
for record in kept:
    sources[report_label(record)] = data.runs_dir(root).validation(record.run_id)
if not sources:
    ui.stop_missing(data.MissingArtifact(cat.files.validation.report))
latest = kept[0] if kept else None
default = 0
if latest is not None and latest.outcome == "rejected":  # show what stopped it, first
    default = list(sources).index(report_label(latest))
    st.error(
        f"The latest retrain of **{cat.name}**, `{latest.run_id}` ({latest.finished}), was rejected at the "
        f"data validation gate: {latest.reason or ''}"
    )
choice = st.selectbox("Validation report", list(sources), index=default)
result = ui.need(data.read_validation, sources[choice])
table = data.validation_table(result)
failed = table[~table["success"]]
if result.success:
    st.success(f"All {len(table)} checks passed ({result.rows} manifest rows).")
else:
    st.error(
        f"{len(failed)} of {len(table)} checks failed: {', '.join(failed['check'])}. "
        "The offending files are listed below each failed check."
    )

shown = pd.DataFrame(
    {
        "result": table["success"].map({True: "✓ passed", False: "✗ failed"}),
        "check": table["check"],
        "what it checks": table["description"],
        "observed": table["observed"],
        "offending files": table["offending_count"],
    }
)
st.dataframe(shown, hide_index=True, width="stretch")
for _, row in failed.iterrows():
    with st.expander(f"✗ {row['check']}: {row['offending_count']} offending file(s)", expanded=True):
        st.markdown(f"{row['description']} — observed: `{row['observed']}`")
        if row["offending"]:
            st.code("\n".join(map(str, row["offending"][:SHOWN_OFFENDING])), language=None)
            listed = len(row["offending"])
            if row["offending_count"] > listed:
                st.caption(
                    f"… and {row['offending_count'] - listed} more (the report keeps the first {listed})"
                )

# The counts describe the workspace's prepared data: a retrain's staging copy is deleted with it.
if choice != workspace_label:
    st.caption(
        f"This report checked the retrain's own {result.rows} manifest rows (its staging workspace is "
        "deleted); pick the workspace's report to see the prepared dataset the live model used."
    )
info = data.read_json_or(cat.prepared / "info.json", {}) if cat.prepared is not None else {}
if choice == workspace_label and isinstance(info, dict) and info:
    st.subheader("Prepared dataset")
    counts = info.get("counts")
    if isinstance(counts, dict) and counts:
        st.dataframe(pd.DataFrame([counts]).astype(str), hide_index=True)
    skipped = info.get("skipped") or []
    if skipped:
        st.warning(f"{len(skipped)} source file(s) were skipped by convert_dataset:")
        st.dataframe(pd.DataFrame(skipped), hide_index=True, width="stretch")
