namespace Gateway.KafkaProtocol.Protocol;

/// <summary>A request that does not parse as its API and version says (short, a lying length, a negative count): the connection closes.</summary>
public sealed class MalformedRequestException(string message) : Exception(message);
