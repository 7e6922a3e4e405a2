"""Reports of a run: JSON, Markdown, JUnit XML, SARIF and a static HTML page with plots."""
