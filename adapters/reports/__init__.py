"""Reports as people read them: a table, CSV and a self-contained HTML page with SVG charts."""
