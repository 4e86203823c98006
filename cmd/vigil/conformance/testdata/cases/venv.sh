# python3 -m venv: a virtual environment with pip installed from the wheel
# Debian ships (ensurepip runs pip in a subprocess, which unpacks and
# byte-compiles it), then the environment's python and pip run.
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
x /usr/bin/python3 -m venv env
x env/bin/python -c 'import sys; print(sys.prefix != sys.base_prefix)'
x env/bin/python -m pip --version --disable-pip-version-check
x env/bin/python -m pip list --disable-pip-version-check --format=freeze
finish
