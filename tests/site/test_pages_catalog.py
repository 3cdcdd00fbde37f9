"""The catalog pages: home, creators, a creator's feed, a post (locked and unlocked)."""

import pytest


@pytest.fixture(autouse=True)
def _past_the_age_gate(client):
    """Creator pages sit behind the 18+ gate since age assurance (tests/accounts/test_rights_age.py pins the gate)."""
    client.post("/accounts/age/gate/", {"next": "/"})

pytestmark = pytest.mark.django_db


def test_home_lists_featured_creators_and_newest_posts(client, make_creator, make_post):
    featured = make_creator(name="Ana Destaque", is_featured=True)
    make_creator(name="Bia Comum")
    make_post(featured, title="Ensaio na praia")

    response = client.get("/")

    assert response.status_code == 200
    body = response.content.decode()
    assert "Ana Destaque" in body
    assert "Bia Comum" not in body  # only featured creators when some are featured
    assert "Ensaio na praia" in body
    assert [c["locked"] for c in response.context["cards"]] == [True]


def test_home_falls_back_to_all_creators_when_none_is_featured(client, make_creator):
    make_creator(name="Carla Sem Destaque")

    response = client.get("/")

    assert "Carla Sem Destaque" in response.content.decode()


def test_home_query_count_does_not_grow_with_posts(client, make_creator, make_post, django_assert_max_num_queries):
    for _ in range(10):
        creator = make_creator(is_featured=True)
        make_post(creator)

    with django_assert_max_num_queries(6):
        response = client.get("/")

    assert len(response.context["cards"]) == 10


def test_creators_page_searches_by_name_and_paginates(client, make_creator, django_assert_max_num_queries):
    make_creator(name="Júlia Rosa")
    for _ in range(30):
        make_creator()

    with django_assert_max_num_queries(5):
        response = client.get("/models/", {"q": "júlia"})
    assert [c.name for c in response.context["page"].object_list] == ["Júlia Rosa"]

    first = client.get("/models/")
    second = client.get("/models/", {"page": 2})
    assert len(first.context["page"].object_list) == 24
    assert len(second.context["page"].object_list) == 7
    assert 'rel="next"' in first.content.decode()


def test_hidden_creator_is_not_listed_and_its_page_is_404(client, make_creator):
    make_creator(name="Escondida", slug="escondida", status="hidden")

    assert "Escondida" not in client.get("/models/").content.decode()
    assert client.get("/models/escondida/").status_code == 404


def test_creator_page_shows_banner_icon_count_and_locked_feed(client, make_creator, make_post):
    creator = make_creator(
        name="Duda", slug="duda", source_banner_url="https://cdn.test/duda/banner.jpg", source_icon_url="https://cdn.test/duda/icon.jpg"
    )
    make_post(creator, title="Primeiro")
    make_post(creator, title="Segundo")

    response = client.get("/models/duda/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "https://cdn.test/duda/banner.jpg" in body
    assert "https://cdn.test/duda/icon.jpg" in body
    assert response.context["creator"].post_count == 2
    assert all(card["locked"] for card in response.context["cards"])
    assert "X-Amz-Signature" not in body and "img0.jpg" not in body


def test_creator_feed_query_count_is_constant(client, subscriber, catalog_storage, make_creator, make_post, django_assert_max_num_queries):
    creator = make_creator(slug="muitos")
    for _ in range(20):
        make_post(creator, images=3)
    client.force_login(subscriber)

    with django_assert_max_num_queries(9):
        response = client.get("/models/muitos/")

    assert len(response.context["cards"]) == 20
    assert not any(card["locked"] for card in response.context["cards"])


def test_locked_post_shows_the_overlay_and_leads_to_plans(client, make_creator, make_post):
    post = make_post(make_creator(), title="Só para assinantes", videos=1)

    response = client.get(f"/posts/{post.pk}/")

    body = response.content.decode()
    assert response.status_code == 200
    assert response.context["locked"] is True
    assert 'data-testid="locked"' in body
    assert f'href="/plans/?next=/posts/{post.pk}/"' in body  # back here once paid
    assert "<video" not in body and "X-Amz-Signature" not in body


def test_subscriber_sees_the_carousel_and_the_video_player(client, subscriber, catalog_storage, make_creator, make_post):
    post = make_post(make_creator(), images=2, videos=1)
    client.force_login(subscriber)

    response = client.get(f"/posts/{post.pk}/")

    body = response.content.decode()
    assert response.context["locked"] is False
    assert body.count('class="slide"') == 3
    assert "<video" in body
    assert "X-Amz-Signature" in body
    assert 'data-testid="locked"' not in body


def test_expired_subscriber_sees_the_post_locked(client, catalog_storage, make_creator, make_post):
    from tests.factories import SubscriptionFactory

    user = SubscriptionFactory(status="expired").user
    post = make_post(make_creator())
    client.force_login(user)

    assert client.get(f"/posts/{post.pk}/").context["locked"] is True


def test_unknown_post_is_404(client):
    response = client.get("/posts/999999/")

    assert response.status_code == 404
