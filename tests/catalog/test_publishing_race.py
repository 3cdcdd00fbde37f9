import pytest

from catalog.models import Creator, Media, Post
from catalog.services.publishing import publish_whitelabel
from tests.catalog.factories import WhitelabelCreatorFactory, WhitelabelMediaFactory, WhitelabelPostFactory
from tests.concurrency import race


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_publishes_of_the_same_creator_at_once_give_one_set_of_rows():
    # given a staging creator nobody has published yet
    staged = WhitelabelCreatorFactory()
    for _ in range(5):
        post = WhitelabelPostFactory(creator=staged)
        for _ in range(3):
            WhitelabelMediaFactory(post=post)

    # when two admins publish it at the same instant
    errors = race(
        lambda: publish_whitelabel(folder_names=[staged.folder_name]),
        lambda: publish_whitelabel(folder_names=[staged.folder_name]),
    )

    # then the staging row lock made them run one after the other: no unique
    # violation, one creator, each post and media once
    assert errors == []
    assert Creator.objects.count() == 1
    assert Post.objects.count() == 5 and Media.objects.count() == 15
    assert Creator.objects.get().post_count == 5
