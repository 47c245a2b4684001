"""Trail delivery: the destinations (object storage, a NATS JetStream stream) and the engine that
follows the event log into them, once per event, in arrival order."""
