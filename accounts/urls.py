from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("signup/", views.signup, name="signup"),
    path("age/", views.age_page, name="age"),
    path("age/gate/", views.age_gate_confirm, name="age_gate"),
    path("age/sandbox/<str:reference>/", views.age_sandbox_provider, name="age_sandbox"),
    path("age/callback/<str:provider>/", views.age_callback, name="age_callback"),
    path("confirm-email/<uidb64>/<token>/", views.confirm_email_view, name="confirm_email"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/done/", views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("reset/done/", views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
]
