import secrets

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        # Created by the operator on the command line: nobody else's mailbox to squat.
        extra_fields.setdefault("email_confirmed_at", timezone.now())
        if not extra_fields["is_staff"] or not extra_fields["is_superuser"]:
            raise ValueError("A superuser must have is_staff and is_superuser set.")
        return self._create_user(email, password, **extra_fields)

    def get_by_natural_key(self, email):
        # Logins are case-insensitive: e-mails are stored lower-cased.
        return self.get(email__iexact=email)


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(_("e-mail"), unique=True)
    name = models.CharField(_("name"), max_length=150, blank=True)
    is_staff = models.BooleanField(
        _("staff status"), default=False, help_text=_("Whether the user can log into the admin.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    email_confirmed_at = models.DateTimeField(
        _("e-mail confirmed at"),
        null=True,
        blank=True,
        help_text=_("When the user proved they read this mailbox. Guest payments attach only to confirmed accounts."),
    )
    language = models.CharField(
        _("language"),
        max_length=10,
        blank=True,
        default="",
        help_text=_("The language the customer chose on the site; their e-mails go out in it. Empty: Portuguese (Brazil)."),
    )

    # Age assurance (contract §2 MIN_AGE, AGE_VERIFICATION; §8: access needs a confirmed age).
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    age_confirmed_at = models.DateTimeField(
        _("age confirmed at"), null=True, blank=True, help_text=_("When the user's age (at least MIN_AGE) was confirmed.")
    )
    age_confirmed_by = models.CharField(
        _("age confirmed by"), max_length=40, blank=True, help_text=_("`declaration`, or the age-verification provider.")
    )

    objects = UserManager()

    EMAIL_FIELD = "email"
    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["-created_at"]

    def __str__(self):
        return self.email

    def clean(self):
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email).lower()

    def get_full_name(self):
        return self.name or self.email

    def get_short_name(self):
        return (self.name or self.email).split(" ")[0]


def new_age_reference() -> str:
    return secrets.token_urlsafe(16)


class AgeVerification(models.Model):
    """
    One age check at a provider (accounts/age.py): its outcome and the
    provider's reference, never the document or selfie images.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PASSED = "passed", _("Passed")
        FAILED = "failed", _("Failed")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="age_verifications")
    provider = models.CharField(_("provider"), max_length=40)
    reference = models.CharField(_("reference"), max_length=100, unique=True, default=new_age_reference)
    provider_reference = models.CharField(_("provider's reference"), max_length=200, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PENDING)
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("age verification")
        verbose_name_plural = _("age verifications")
        ordering = ["-started_at"]

    def __str__(self):
        return f"{self.provider} {self.reference} ({self.get_status_display()})"
