from .._models import model_pipeline


def create_pipeline(**kwargs):
    return model_pipeline("vaeplus")
