"""Celery only nudges delivery: the rows are the queue, and the tick's sweep sends whatever a
lost nudge left behind."""

from celery import shared_task

from notifications import delivery


@shared_task(acks_late=False, ignore_result=True)
def deliver() -> int:
    return delivery.deliver()
