global using ErrorCode = Wharf.Contracts.Oci.ErrorCode;
