"""Helpers for testing with Treadle's real services: throwaway databases, vhosts and workers.

Tests and benchmarks in this repository use them, and so can applications that test their
own workflows against PostgreSQL and RabbitMQ. Nothing here is imported by the engine.
"""

from treadle.testing.postgres_server import PostgresInstance, postgres_instance
from treadle.testing.rabbitmq_node import RabbitMQNode, rabbitmq_node
from treadle.testing.redis_server import RedisInstance, redis_instance
from treadle.testing.services import (
    POSTGRES_ADMIN_URL,
    RABBITMQ_URL,
    REDIS_URL,
    throwaway_postgres_database,
    throwaway_rabbitmq_vhost,
    throwaway_redis_database,
)

__all__ = [
    "POSTGRES_ADMIN_URL",
    "RABBITMQ_URL",
    "REDIS_URL",
    "PostgresInstance",
    "RabbitMQNode",
    "RedisInstance",
    "postgres_instance",
    "rabbitmq_node",
    "redis_instance",
    "throwaway_postgres_database",
    "throwaway_rabbitmq_vhost",
    "throwaway_redis_database",
]
