"""The prediction microservice: the promoted models over HTTP."""
