using Gateway.KafkaProtocol.Protocol;
using Gateway.Storage;

namespace Gateway.KafkaProtocol.Apis;

/// <summary>
/// InitProducerId (key 22), versions 0-1: a new producer id at epoch 0 for an idempotent producer, never one handed
/// out before (the store keeps the ids durable). Kafka too gives a producer without a transactional id a new id each
/// time. Transactions are not offered: a transactional id is refused with INVALID_REQUEST (and the transactions APIs
/// are not advertised, so clients do not ask).
/// </summary>
internal static class InitProducerIdApi
{
    public static async Task<bool> HandleAsync(KafkaRequest request, KafkaWriter writer, KafkaBroker broker, CancellationToken cancel)
    {
        var reader = new KafkaReader(request.Body.Span);
        string? transactionalId = reader.ReadNullableString();
        _ = reader.ReadInt32(); // transaction_timeout_ms

        short error = ErrorCode.None;
        long producerId = -1;
        if (transactionalId is not null)
        {
            error = ErrorCode.InvalidRequest;
        }
        else if (!broker.Store.Capabilities.HasFlag(StorageCapabilities.IdempotentProducers))
        {
            error = ErrorCode.UnsupportedVersion;
        }
        else
        {
            try
            {
                producerId = await broker.Store.NewProducerIdAsync(cancel);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                error = broker.ErrorOf(ex, "", -1);
            }
        }
        writer.WriteInt32(0); // throttle_time_ms
        writer.WriteInt16(error);
        writer.WriteInt64(producerId);
        writer.WriteInt16((short)(error == ErrorCode.None ? 0 : -1));
        return true;
    }
}
