"""The vocabulary configuration is written in: kinds of value, sizes, YAML read with line errors.

Every part declares the keys it reads in these terms (``*/keys.py``);
``config/`` joins the declarations. The matches file is read with them too.
"""
