"""Training code: the models' training stages and the loop the LM stages share (`loop`)."""
