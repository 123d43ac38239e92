"""Packaging for pump_orchestration.

Versions that move together are pinned exactly: dagster, dagster-webserver,
dagster-graphql and dagster-postgres are released in lock-step, and models are
stored with joblib, so scikit-learn/xgboost/imbalanced-learn versions must match
between the process that trains and the process that scores an artifact.

We depend on ``xgboost-cpu`` rather than ``xgboost``: it is the same library
and import name, without the several hundred MB of CUDA libraries the plain
wheel pulls in. Nothing here trains on a GPU.

SQLAlchemy stays on 2.0.x: with 2.1 ``postgresql://`` resolves to psycopg 3,
which dagster-postgres does not install.
"""
from setuptools import find_packages, setup

DAGSTER = "1.13.27"

setup(
    name="pump_orchestration",
    version="0.1.0",
    description="Train, test, compare and serve pump-detection classifiers for pump.fun coins with Dagster.",
    packages=find_packages(exclude=["pump_orchestration_tests*"]),
    # The n8n workflow the webhook contract test imports (pump_orchestration/testing/n8n.py).
    package_data={"pump_orchestration.testing": ["*.json"]},
    python_requires=">=3.11,<3.12",
    install_requires=[
        f"dagster=={DAGSTER}",
        f"dagster-webserver=={DAGSTER}",
        f"dagster-graphql=={DAGSTER}",
        "dagster-postgres==0.29.27",
        "pandas==2.3.3",
        "numpy==2.3.5",
        "pyarrow==26.0.1",
        # Columnar coin_metrics loads from PostgreSQL (binary COPY straight into Arrow); the manager moves with it.
        "adbc-driver-postgresql==1.13.0",
        "adbc-driver-manager==1.13.0",
        "scikit-learn==1.7.2",
        "imbalanced-learn==0.14.0",
        "xgboost-cpu==3.1.2",
        "joblib==1.6.0",
        "sqlalchemy==2.0.44",
        "psycopg2-binary==2.9.11",
        "requests>=2.32,<3",
        "tenacity==9.1.2",
        "matplotlib==3.11.2",
    ],
    extras_require={
        "test": [
            "pytest>=8,<10",
            "hypothesis>=6.100,<7",
            "pytest-httpserver>=1.1,<2",
        ],
    },
    entry_points={
        "console_scripts": ["pump-orchestration=pump_orchestration.cli:main"],
    },
)
