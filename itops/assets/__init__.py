"""Assets: Computers, phones and network devices: lifecycle, checkout and history."""
