from django.apps import AppConfig


class GantryConfig(AppConfig):
    name = "gantry"
    verbose_name = "Gantry"
