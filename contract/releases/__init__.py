"""Released snapshots of the contract, one folder per version (data only; see contract.releases)."""
