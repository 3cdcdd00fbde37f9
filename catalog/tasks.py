"""
Celery's autodiscovery finds the catalog's tasks here; each is defined next to the code it runs
(catalog/services/publishing.py, catalog/services/previews.py). Contract §6 names the publish task
`whitelabel.tasks.publish`: it is registered under that name as well as `catalog.tasks.publish`.
"""

from catalog.services.previews import generate_previews_task as generate_previews
from catalog.services.publishing import publish_task as publish
from catalog.services.publishing import publish_whitelabel_task as publish_whitelabel

__all__ = ["generate_previews", "publish", "publish_whitelabel"]
