using Gateway.Log;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Hosting;

/// <summary>Refuses to start with storage settings the log cannot use, saying which and why.</summary>
internal sealed class StorageOptionsValidation : IValidateOptions<LogStoreOptions>
{
    public ValidateOptionsResult Validate(string? name, LogStoreOptions options) =>
        options.ValidationError() is { } error ? ValidateOptionsResult.Fail($"Storage: {error}") : ValidateOptionsResult.Success;
}
