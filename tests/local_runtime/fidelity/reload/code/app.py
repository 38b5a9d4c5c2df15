import version


def handler(event, context):
    return {"version": version.VERSION}
