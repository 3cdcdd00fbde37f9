"""
Admin actions the catalog offers on the white-label creators list (contract §5).

`whitelabel.admin` looks for this module and adds every function in
`CREATOR_ACTIONS` to its creator admin, so the whitelabel app never imports
the catalog otherwise.
"""

from django.contrib import admin, messages
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from catalog.services import publishing


@admin.action(description=gettext_lazy("Publish to catalog"), permissions=["change"])
def publish_to_catalog(modeladmin, request, queryset):
    folders = list(queryset.values_list("folder_name", flat=True))
    try:
        result = publishing.publish_whitelabel(folder_names=folders)
    except publishing.PublishError as exc:
        modeladmin.message_user(request, str(exc), messages.ERROR)
        return
    modeladmin.message_user(
        request,
        _("Published %(creators)d creators: %(posts)d new posts, %(hidden)d hidden, %(media)d new media.")
        % {
            "creators": result.creators,
            "posts": result.posts_created,
            "hidden": result.posts_hidden,
            "media": result.media_created,
        },
        messages.SUCCESS,
    )


CREATOR_ACTIONS = [publish_to_catalog]
