"""The Streamlit review dashboard: reads the pipeline's artifacts, calls the library for live inference.

Start it from the project root with ``diffad dashboard`` (or ``streamlit run dashboard/app.py``).
"""
