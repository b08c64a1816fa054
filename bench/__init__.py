"""drnet-bench orchestration: suites -> run configs -> train -> evaluate -> runs/ -> reports/."""

__version__ = "0.1.0"
