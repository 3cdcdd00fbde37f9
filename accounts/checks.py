from django.conf import settings
from django.core.checks import Error, register


@register()
def age_verification_is_known(app_configs, **kwargs):
    from accounts.age import DECLARATION, PROVIDERS

    if settings.AGE_VERIFICATION == DECLARATION or settings.AGE_VERIFICATION in PROVIDERS:
        return []
    return [
        Error(
            f"AGE_VERIFICATION={settings.AGE_VERIFICATION!r} is neither 'declaration' nor a known provider.",
            hint=f"Use 'declaration' or one of: {', '.join(sorted(PROVIDERS))}.",
            id="accounts.E002",
        )
    ]
