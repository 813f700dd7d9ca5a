"""`exkernel`, the operator's command line (`kernel.cli.main:main`)."""
