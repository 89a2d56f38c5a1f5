from setuptools import find_packages, setup

with open("README.rst", encoding="utf-8") as f:
    long_description = f.read()

setup(
    # PyPI's "sarge" is an unrelated project: the distribution has its own name,
    # the package and the command stay "sarge".
    name="sarge-deploy",
    version="0.1.0",
    description="Run Python web apps under supervisord and swap their versions without "
                "dropping a request",
    long_description=long_description,
    long_description_content_type="text/x-rst",
    license="MIT",
    packages=find_packages(include=["sarge", "sarge.*"]),
    # sarge/fleet/bootstrap-sarge: a link to deploy/bootstrap-sarge.py, shipped as a copy,
    # which `sarge-fleet bootstrap` uploads to the hosts.
    package_data={"sarge": ["templates/*"], "sarge.fleet": ["bootstrap-sarge"]},
    python_requires=">=3.10",
    install_requires=[
        "supervisor>=4.2",
        "virtualenv>=20",
        "jinja2>=3.0",
        "psutil>=5.8",
        "click>=8.0",
        # sarge validate: PEP 508 requirements as pip itself reads them (PyPA's parser,
        # the one pip vendors), rather than a regular expression of our own.
        "packaging>=22",
        # .sargeignore: gitignore's syntax in full (negation, **, anchoring, folders),
        # pure Python, no dependencies, kept up since 2013; a small matcher of our own
        # would get gitignore's corner cases wrong.
        "pathspec>=0.12",
        # tomllib is in the standard library from Python 3.11 on.
        'tomli>=1.1; python_version < "3.11"',
    ],
    extras_require={
        # uv makes the tests' virtualenvs quick; the pip path is tested too. pytest 9.2
        # breaks xdist's --dist loadgroup without a word (pytest-xdist issue #1386): the
        # tests that share one home for a module would each make it on every worker.
        # xdist 3.8 is the first with --no-loadscope-reorder (pytest.ini: the run's order).
        # aiosmtpd: a real SMTP server for the notification tests (aio-libs' own).
        # websockets: a real WebSocket client, through the front-end to a real ASGI app.
        "test": ["pytest>=7,<9.2", "pytest-xdist>=3.8", "pytest-timeout>=2", "hypothesis>=6",
                 "uv", "aiosmtpd>=1.4", "websockets>=12",
                 "fabric>=3,<4", "wheel"],
        # sarge-fleet: one machine drives sarge on many over SSH (Fabric 3: paramiko and
        # invoke, a well-kept SSH engine; sarge has no SSH code of its own). Optional: a
        # server that only runs apps does not need it. wheel: `sarge-fleet bootstrap` builds
        # the local sarge's wheel without the network (--no-build-isolation; setuptools
        # before 70.1 needs it for that).
        "fleet": ["fabric>=3,<4", "wheel"],
        "docs": ["sphinx>=5"],
    },
    entry_points={"console_scripts": ["sarge = sarge.cli:main",
                                      "sarge-fleet = sarge.fleet.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Operating System :: POSIX :: Linux",
        "Topic :: System :: Systems Administration",
    ],
)
