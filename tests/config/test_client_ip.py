"""The one client address (contract §2, TRUSTED_PROXIES): what every throttle, lockout and log line uses."""

import pytest
from django.test import RequestFactory

from config.client_ip import client_ip


def request_from(remote="10.0.0.1", forwarded=None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_the_setting_is_declared_and_believes_no_header_by_default(settings):
    assert settings.TRUSTED_PROXIES == 0


def test_without_trusted_proxies_x_forwarded_for_is_never_believed(settings):
    settings.TRUSTED_PROXIES = 0

    assert client_ip(request_from("10.0.0.1", "203.0.113.9")) == "10.0.0.1"


def test_one_proxy_takes_the_address_it_appended_not_what_the_client_wrote(settings):
    settings.TRUSTED_PROXIES = 1

    # the client forged "1.2.3.4"; nginx appended the peer it saw
    assert client_ip(request_from("127.0.0.1", "1.2.3.4, 198.51.100.7")) == "198.51.100.7"
    assert client_ip(request_from("127.0.0.1", "198.51.100.7")) == "198.51.100.7"


def test_two_proxies_take_the_second_address_from_the_right(settings):
    settings.TRUSTED_PROXIES = 2

    assert client_ip(request_from("10.0.0.2", "1.2.3.4, 198.51.100.7, 10.0.0.9")) == "198.51.100.7"


@pytest.mark.parametrize("forwarded", ["", "  ", "198.51.100.7"])
def test_fewer_entries_than_proxies_fall_back_to_the_socket_address(settings, forwarded):
    settings.TRUSTED_PROXIES = 2

    assert client_ip(request_from("10.0.0.1", forwarded)) == "10.0.0.1"


def test_a_garbage_hop_falls_back_to_the_socket_address(settings):
    settings.TRUSTED_PROXIES = 1

    assert client_ip(request_from("10.0.0.1", "1.2.3.4, not-an-address")) == "10.0.0.1"


@pytest.mark.parametrize(
    ("hop", "expected"),
    [("198.51.100.7:51234", "198.51.100.7"), ("[2001:db8::1]:443", "2001:db8::1"), ("2001:db8::1", "2001:db8::1")],
)
def test_ports_and_ipv6_are_understood(settings, hop, expected):
    settings.TRUSTED_PROXIES = 1

    assert client_ip(request_from("10.0.0.1", hop)) == expected
