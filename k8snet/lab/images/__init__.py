"""The lab's image catalog (what each image reference runs) and our stand-ins for test images."""
