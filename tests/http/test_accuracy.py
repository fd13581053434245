"""The reference recipes reach the exercise's accuracy: the default dnn
([100, 100], Adagrad 0.05, 1000 steps, batch 30, clip 5) at least 0.94 and
the default linear model (Adagrad 0.03) at least 0.89 on validation."""


def test_default_recipes_reach_reference_accuracy(client, validate):
    dnn = client.create_run({"model": "dnn", "seed": 1})
    lin = client.create_run({"model": "linear", "seed": 1})
    dnn = client.wait_for_run(dnn["id"], "succeeded", timeout=180)
    lin = client.wait_for_run(lin["id"], "succeeded", timeout=180)
    for run in (dnn, lin):
        assert len(run["periods"]) == 10
        assert [p["step"] for p in run["periods"]] == list(range(100, 1001, 100))
        # training loss trends down over the run
        assert run["periods"][-1]["train_log_loss"] < run["periods"][0]["train_log_loss"]
    assert dnn["validation_accuracy"] >= 0.94, dnn["periods"]
    assert lin["validation_accuracy"] >= 0.89, lin["periods"]
    e = validate(client.post_json(f"/runs/{dnn['id']}/evaluate", {"dataset": "mnist-test"}),
                 "/runs/{id}/evaluate", "post", 200)
    assert e["accuracy"] >= 0.93
