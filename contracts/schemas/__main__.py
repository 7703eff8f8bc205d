"""Write the JSON Schema files: `python -m contracts.schemas`."""

import logging

from contracts.schemas import write_schemas

logging.basicConfig(level=logging.INFO, format="%(message)s")
for path in write_schemas():
    logging.getLogger("contracts.schemas").info("wrote %s", path)
