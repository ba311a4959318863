"""Kafka for Leadflow: provisioning a broker, topics, the producer and the consumer loop."""
