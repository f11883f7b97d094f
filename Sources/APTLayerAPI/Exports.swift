// The generated `Components`, `Operations`, `APIProtocol` and `registerHandlers` come from
// openapi/openapi.yaml (linked here) at build time.
@_exported import OpenAPIRuntime
