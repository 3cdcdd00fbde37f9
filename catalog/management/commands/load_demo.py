"""
Demo data for `make run`: plans (with DEBUG, the monthly one has a 7-day
trial), an order bump, the sandbox gateway, an admin account, the demo coupon,
a small catalog, published terms and privacy pages (demo texts, when none is
published) and, with DEBUG, four months of demo sales for the finance
dashboard (billing.demo). Idempotent: running it twice leaves the same rows.

`--force` without DEBUG (the benchmarks) loads the plans without a trial and
no sales, so that every checkout of a benchmark issues a PIX.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from billing.demo import load_demo_sales
from billing.models import OrderBump, PaymentGateway, Plan
from legal.models import LegalDocument
from legal.selectors import current_document
from legal.services import create_legal_document, publish_legal_document

DEMO_ADMIN_EMAIL = "admin@creatorflix.local"
# Development only (the command refuses to run without DEBUG unless --force).
DEMO_ADMIN_PASSWORD = "demo-admin-2026"

PLANS = [
    {
        "name": "Mensal",
        "price_cents": 2990,
        "duration_days": 30,
        "display_order": 1,
        "card_style": Plan.CardStyle.DEFAULT,
        "trial_days": 7,  # with DEBUG only (see the module's docstring)
        "benefits": [
            {"title": "Acesso a todos os criadores", "subtitle": "Fotos e vídeos exclusivos", "icon": "unlock"},
            {"title": "Novidades toda semana", "subtitle": "", "icon": "sparkles"},
        ],
    },
    {
        "name": "Trimestral",
        "price_cents": 7990,
        "duration_days": 90,
        "display_order": 2,
        "card_style": Plan.CardStyle.FEATURED,
        "benefits": [
            {"title": "Tudo do Mensal", "subtitle": "", "icon": "check"},
            {"title": "Economize 11%", "subtitle": "R$ 26,63 por mês", "icon": "tag"},
        ],
    },
    {
        "name": "Anual",
        "price_cents": 23990,
        "duration_days": 365,
        "display_order": 3,
        "card_style": Plan.CardStyle.PREMIUM,
        # Card as well as PIX, in up to 3 installments (contract §1): the sandbox takes its test cards.
        "accepts_card": True,
        "max_installments": 3,
        "benefits": [
            {"title": "Tudo do Mensal", "subtitle": "", "icon": "check"},
            {"title": "Economize 33%", "subtitle": "R$ 19,99 por mês", "icon": "crown"},
        ],
    },
]

# Demo texts only: an operator writes the real ones in the admin (a new version each).
LEGAL_PAGES = {
    LegalDocument.Kind.TERMS: (
        "Termos de uso",
        "Texto de demonstração. A assinatura dá acesso ao conteúdo dos criadores enquanto estiver ativa. "
        "Você pode cancelar quando quiser pela sua conta, e desistir da compra em até 7 dias do primeiro "
        "pagamento com reembolso integral (CDC art. 49). O conteúdo é para maiores de 18 anos.",
        "Terms of use",
        "Demo text. A subscription gives access to the creators' content while it is active. You may cancel "
        "at any time from your account, and withdraw within 7 days of the first payment with a full refund "
        "(CDC art. 49). The content is for adults (18+).",
    ),
    LegalDocument.Kind.PRIVACY: (
        "Política de privacidade",
        "Texto de demonstração. Guardamos seu nome, e-mail, telefone e CPF (cifrado) para processar pagamentos "
        "e dar acesso à assinatura. Você pode baixar seus dados ou excluir sua conta pela página da conta (LGPD art. 18).",
        "Privacy policy",
        "Demo text. We keep your name, e-mail, phone and CPF (encrypted) to process payments and give access to "
        "your subscription. You can download your data or delete your account from the account page (LGPD art. 18).",
    ),
}


class Command(BaseCommand):
    help = "Load demo plans, an admin, the sandbox gateway and a demo catalog (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Run even with DEBUG off (no trial, no demo sales).")
        parser.add_argument("--no-sales", action="store_true", help="Leave out the demo sales.")

    def handle(self, *args, force=False, no_sales=False, **options):
        if not settings.DEBUG and not force:
            raise CommandError("load_demo creates a known admin password; run it with DEBUG=true (or --force).")
        with transaction.atomic():
            for spec in PLANS:
                spec = {**spec, "trial_days": spec.get("trial_days", 0) if settings.DEBUG else 0}
                Plan.objects.update_or_create(name=spec["name"], defaults=spec)
            OrderBump.objects.update_or_create(
                name="Pack de fotos bônus",
                defaults={"description": "50 fotos extras em alta resolução", "price_cents": 990, "display_order": 1},
            )
            # The sandbox is the one internal gateway of a demo site.
            PaymentGateway.objects.filter(is_active=True, kind__in=PaymentGateway.INTERNAL_KINDS).exclude(
                kind=PaymentGateway.Kind.SANDBOX
            ).update(is_active=False)
            PaymentGateway.objects.update_or_create(kind=PaymentGateway.Kind.SANDBOX, defaults={"is_active": True})

            User = get_user_model()
            admin, created = User.objects.get_or_create(
                email=DEMO_ADMIN_EMAIL, defaults={"name": "Admin", "is_staff": True, "is_superuser": True}
            )
            if created or not admin.check_password(DEMO_ADMIN_PASSWORD):
                admin.set_password(DEMO_ADMIN_PASSWORD)
                admin.save(update_fields=["password"])

            catalog_summary = self._load_catalog()
            legal_summary = self._publish_legal_pages()

        # After the commit above, in a transaction of its own (its e-mails are dropped on that commit).
        sales_summary = load_demo_sales() if settings.DEBUG and not no_sales else ""

        self.stdout.write(self.style.SUCCESS(f"Demo data ready: {len(PLANS)} plans, 1 order bump, sandbox gateway active{catalog_summary}{legal_summary}{sales_summary}."))
        self.stdout.write(f"Admin login: {settings.SITE_URL}/admin/  e-mail: {DEMO_ADMIN_EMAIL}  password: {DEMO_ADMIN_PASSWORD}")

    def _publish_legal_pages(self) -> str:
        """Every footer and the checkout link to /terms/ and /privacy/: a demo site has both in force."""
        published = 0
        for kind, (title_pt_br, body_pt_br, title_en, body_en) in LEGAL_PAGES.items():
            if current_document(kind=kind) is not None:
                continue
            document = create_legal_document(kind=kind, title_pt_br=title_pt_br, body_pt_br=body_pt_br, title_en=title_en, body_en=body_en)
            publish_legal_document(document=document)
            published += 1
        return f", {published} legal pages published" if published else ""

    def _load_catalog(self) -> str:
        try:
            from catalog.demo import load_demo_catalog  # guarded: the demo catalogue is optional, the plans load without it
        except ImportError:
            return ""
        return load_demo_catalog()
