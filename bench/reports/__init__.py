"""Reports read only the result store: tables (Markdown, CSV), plots (PNG)."""
