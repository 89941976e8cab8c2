"""What runs inside the hosts (data, read through importlib.resources; installed by ``restyle daw install``)."""
