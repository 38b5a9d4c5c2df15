import jmespath
import shared_helpers


def handler(event, context):
    return {"jmespath": jmespath.__version__, "greeting": shared_helpers.greeting()}
