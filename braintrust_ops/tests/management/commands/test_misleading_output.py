"""What a command prints is what happened: counts that add up, a backlog only of earlier runs, no success
line before a failure, a stale count after relabelling, and an option that matches nothing is an error."""

import pytest
from django.core.management.base import CommandError

from braintrust_ops.models import CommandRun, DatasetInsertion
from braintrust_ops.tests.factories import tagged_log

pytestmark = pytest.mark.django_db(transaction=True)


# --- push_to_datasets --dataset -------------------------------------------------------------------------


@pytest.mark.parametrize("also", [[], ["--dataset", "Halacha evals"]], ids=["alone", "beside_a_good_name"])
@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]], ids=["run", "dry_run"])
def test_a_dataset_option_matching_no_subscribed_dataset_fails_naming_it_and_the_subscribers(
    datasets_project, run_command, also, dry_run
):
    tagged_log("l1", "halacha")
    with pytest.raises(CommandError) as raised:
        run_command("push_to_datasets", "--dataset", "NoSuchName", *also, *dry_run)
    assert str(raised.value) == (
        "--dataset 'NoSuchName' matches no subscribed dataset (by name or id); nothing was pushed. "
        "The datasets that subscribe: Halacha evals, Mixed, Translation evals."
    )
    assert datasets_project.count("dataset_insert") == 0 and not DatasetInsertion.objects.exists()


def test_a_dataset_option_naming_an_unsubscribed_dataset_fails_too(datasets_project, run_command):
    datasets_project.state.add_dataset("Unsubscribed", "no marker here")
    with pytest.raises(CommandError, match="'Unsubscribed' matches no subscribed dataset"):
        run_command("push_to_datasets", "--dataset", "Unsubscribed")
    assert CommandRun.objects.get().outcome == "failed"
