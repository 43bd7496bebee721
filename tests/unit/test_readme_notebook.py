from deployments.dev import readme_notebook


def test_the_committed_readme_notebook_is_the_readmes_python_blocks():
    assert readme_notebook.main(["check"]) == 0, "python -m deployments.dev.readme_notebook write"


def test_every_python_block_is_a_cell_under_its_heading():
    readme = "## A\n```python\nx = 1\n```\ntext\n### B\n```python\nawait f(x)\n```\n```bash\nls\n```\n"
    assert readme_notebook.python_blocks(readme) == [("A", "x = 1"), ("B", "await f(x)")]
