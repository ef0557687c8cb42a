from tests.factories import World


def test_factory_reaches_every_trait(world: World) -> None:
    for state in (
        "ordered",
        "at_outlet",
        "received",
        "active",
        "lost_oral",
        "lost_written",
        "replaced",
    ):
        assert world.card(state).state == state
