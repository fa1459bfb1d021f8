"""The program: its settings, the MLM tier table, and a demo network."""
